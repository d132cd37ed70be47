"""What ``avloc predict`` writes per video: events.json / .srt / .vtt / .tsv, timeline.png, report.html."""

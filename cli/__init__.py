"""The `tfrnn` command line (installed as the `tfrnn_cli` package)."""

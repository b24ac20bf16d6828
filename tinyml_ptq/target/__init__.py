"""The hardware side before anything runs: the board descriptions (firmware/boards/*/board.toml),
building a project folder with the board's compiler, and flashing the firmware through a probe."""

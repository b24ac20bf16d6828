"""The host's interpreters, each in a child process so that a native crash is an error line:
LiteRT (calibration, the quantize report) and the TFLite Micro reference kernels, the oracle
every output is checked against."""

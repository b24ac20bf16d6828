"""Stage 2, generate: the .tflite read into the graph IR and checked, lowered to kernel calls,
the activation memory planned, and the C sources and the project folder written; or a
TensorFlow Lite Micro project, with TFLM's arena derived."""

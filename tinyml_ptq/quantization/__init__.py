"""Stage 1, quantize: the Keras model loaded, converted to full int8 with the TFLite converter
and a representative data set, calibrated and equalized, and what it cost reported."""

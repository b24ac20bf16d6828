"""The stages put together: deploy (all four, cached), verify (generated C against TFLM on the
host), check (the CI gate), the HTML report, and bench (ours and TFLM side by side)."""

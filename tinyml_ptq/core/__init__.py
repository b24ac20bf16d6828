"""What every stage uses: error and progress output, atomic file writes, the versioned JSON
formats, the data files users give, the version, and where the non-Python files live."""

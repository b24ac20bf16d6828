"""Stage 4, run: the firmware's protocol, the links to it (serial port, TCP, a child's pipes),
the emulators that host it (QEMU, Renode), and the run stage that checks every output."""

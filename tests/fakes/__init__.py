"""Wire-level fakes of cloud services that have no local emulator."""

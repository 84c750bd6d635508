from mobilekit.cli import entry

entry()

"""One module per group of subcommands; each `<name>_command` is a click command."""

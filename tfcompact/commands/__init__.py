"""Sub-commands of the `tfcompact` command line; each module has `add_arguments` and `run`."""

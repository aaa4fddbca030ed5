"""First-party plugins, registered through the `ssbm_bench` entry-point group like any other."""

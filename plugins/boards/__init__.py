"""First-party boards: ssbm, deletion, isa, stability (each registered through the entry-point group)."""

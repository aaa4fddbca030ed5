"""``python -m ssbm_bench_plugins.synthetic OUTPUT_DIR``: generate the synthetic corpus."""

import sys

from .build import main

sys.exit(main())

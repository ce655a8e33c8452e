"""spark-submit entry point: `spark-submit [options] submit.py JOB [ARGS]`, the job package's CLI.

spark-submit runs a file, not `python -m`; this file is shipped next to the job package's zip
(--py-files), so EMR steps reach the same dispatcher (spark_jobs.__main__) as pods and tasks.
"""

from __future__ import annotations

import sys

from spark_jobs.__main__ import main

if __name__ == "__main__":
    sys.exit(main())

"""``spark-submit`` entry script: ``spark-submit --master URL .../spark_submit.py --model ... --input ... --output ...``.

A file of its own so that nothing Spark pickles is defined in ``__main__``; the master
comes from ``spark-submit --master`` (see docs/architecture.md, "Scoring engines").
"""

from village_credit.scoring.spark import main

if __name__ == "__main__":
    main()

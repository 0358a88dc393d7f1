"""The sweep directory and every other file the package writes or reads back: one storage boundary
below everything else (``sweepdir``: local paths and pyarrow-fs URIs, names, atomic writes;
``signing``: HMAC signatures of ``sweep.json``, Ray's state and the tables).
Every command that reads a sweep directory (run, resume, report, evaluate, warm-start) goes
through here, so what may be trusted from storage is decided in one place.

May import: snnsearch.constants (nothing else of the package: it sits below every layer).
"""

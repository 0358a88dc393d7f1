"""Training pieces both tasks use: checkpoint files, optimisers and schedules by name, weight
transfer (``pretrain``), flat trial dict → frozen config (``flat_config``) and where a trainable
reports (``reporter``: Ray Tune or plain Python).

May import: snnsearch.storage, snnsearch.energy, snnsearch.registry, snnsearch.constants.
"""

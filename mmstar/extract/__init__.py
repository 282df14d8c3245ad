"""The robust extractor's parts (``mmstar.matching`` is the public import): word lists as data
(``lexicon``), values (``values``), rewrites of structure into plain statements (``rewrite``) and
the commitments a reply makes (``commitments``)."""

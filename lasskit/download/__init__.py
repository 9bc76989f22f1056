"""``lasskit download``: every dataset and weight file the challenge needs, verified and resumable.

- :mod:`~lasskit.download.catalogue`: what each name is (Zenodo records, files, known MD5s, licence);
- :mod:`~lasskit.download.zenodo`: a record's file list, sizes and MD5s from its API, cached;
- :mod:`~lasskit.download.fetch`: HTTP downloads (resume, retry, verify, several at once);
- :mod:`~lasskit.download.extract`: zip, split zip and 7z extraction, safe and resumable;
- :mod:`~lasskit.download.run`: the command itself (plan, fetch, extract, record paths);
- :mod:`~lasskit.download.cache`: the cache folder.

Which weight files a model name stands for is the models layer's half: :mod:`lasskit.models.downloads`.
"""

"""The ``kubernetes`` source: the API objects of a cluster (not its volumes).

* :mod:`.client`: one API server reached through the official ``kubernetes`` client's
  ``ApiClient`` (kubeconfig and context, or in-cluster), its errors translated.
* :mod:`.discovery`: every group and resource type the server serves, preferred versions.
* :mod:`.objects`: server-set fields stripped, what never restores, namespace rewriting.
* :mod:`.backup`, :mod:`.restore`, :mod:`.testing`: the three operations.

See ``docs/sources/kubernetes.md``.
"""

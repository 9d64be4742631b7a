"""Split a dist_git_commit item (namespace/name#gitref) into its pieces.
Same signature as check_modulemd's split_string.run(string)."""


def run(string):
    repo, _, gitref = string.partition('#')
    namespace, _, name = repo.rpartition('/')
    if not (namespace and name and gitref):
        raise ValueError('expected namespace/name#gitref, got %r' % string)
    return dict(namespace=namespace, name=name, gitref=gitref)

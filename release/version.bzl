"""fcvm's version: the one place it is written (release tarballs' names,
`fcvm --version`, the installed directory /var/lib/fcvm/<version>)."""

FCVM_VERSION = "0.17.0"

"""The application around the query path: the ``marginrank`` command and its subcommands, the
bundle build, the HTTP service, progress reporting. Nothing on the query path imports this
package."""

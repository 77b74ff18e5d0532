"""Clients the conformance runner can drive: each reads the runner's environment (``env``), takes
its JSON-line instructions on standard input and answers on standard output (``stdio``, over the
protocol of ``conformance.instructions``). ``engine`` is fixengine's own Engine as such a client,
and the example a firm's adapter can follow."""

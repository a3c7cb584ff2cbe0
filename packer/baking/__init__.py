"""The bake: one module per concern, behind the thin entry point ``packer/bake.py``.

``layout`` (where the template lives), ``errors`` (exit codes), ``console`` (stderr and phase
times), ``varfiles`` (Packer variables as Packer resolves them), ``digest`` (what the image is
made of), ``manifest`` (what Packer built), ``registry`` (reuse, conflict, clean-up in EC2),
``aws`` (session and credentials), ``legacy`` (the Packer 1.6.6 template, generated),
``runner`` (the Packer process), ``processes``, ``emulator`` (local EC2 API), ``rootfs``
(cached Debian 12 tree), ``build_host`` (sshd in that tree), ``scratch`` (temporary
directories, and those of killed bakes), ``pipeline`` (one bake, start to
end) and ``cli`` (arguments and exit codes). Service, version and image-name rules are the
project's image contract (``components.image_contract``), shared with the Pulumi program and the
release command.
"""

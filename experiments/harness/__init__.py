"""What turns a paper's spec into runs, for every paper alike: the spec language (``spec``: frozen configurations,
``@register_table``), the task registry (``tasks``: task -> data module, LightningModule or evaluation, model
inputs), planning (``plan``, ``overrides``, ``checks``, ``run_sources``), execution (``execute``: one run; ``jobs``:
CPU runs side by side; ``runner``: a whole table, with ``progress``), what a run leaves (``run_dir``: its folder, its
files and its state; ``records``, ``provenance``, ``static``: the static columns, ``timings``: what some static
columns time), what keeps runs safe (``run_lock``, ``interruption``), the claims files' reader (``claims``) and the
command line (``cli``, run as ``python -m experiments``). A paper's facts live in its own folder and the inventory,
not here: what one paper alone needs (a task, a command) registers itself from its folder."""

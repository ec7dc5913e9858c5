"""The paper-scale smoke, ``python -m tools smoke ID``: every run of a table at paper scale through the run path, on
generated data of the real datasets' shape, a few optimizer steps and one multi-view test batch each, with its step
and loader rates and its memory against the GPU its paper names.

- ``runs``: what a smoke run is (the run as ``run --scale paper`` resolves it, as the smoke steps it, its data, the
  paper's GPU) and what every record carries;
- ``step``: one run stepped and measured;
- ``sweep``: the tables one run after another, the command line, resuming after a lost GPU context;
- ``lanes``: a sweep in processes side by side on one device (``--jobs N``).

The record files are read and rendered by ``reports.smoke_records`` (``python -m reports readme``).
"""

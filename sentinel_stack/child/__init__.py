"""What every child program of the stack uses to talk to its launcher.

These helpers speak the systemd protocols (sd_notify, socket activation), so a child
written with them runs unchanged under `sentinel-stack up`, under systemd, or by hand.
"""

"""dreamrun's Hydra launchers. A module of the hydra_plugins namespace, as Hydra requires of a launcher;
the work is done in dreamrun.sweeps. Hydra imports every module here at start-up: keep them light."""

"""Neuron activity (dormant ratio, GraMa), resets (ReDo, ReGraMa) and representation probes."""

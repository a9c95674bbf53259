"""Neuron activity: probes, dormant / GraMa / srank metrics, traced wiring, resets (ReDo, ReGraMa) and the
training-loop hook that runs them on every network an agent names."""

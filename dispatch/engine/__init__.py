"""The parts of the SimPy engine behind :class:`dispatch.simulator.Simulation`.

The simulation is one class assembled from mixins, one module per job, so each stays
small while the hot path keeps plain ``self.method`` calls on one object:

* :mod:`~dispatch.engine.events`: the event loop -- the clock, scheduling (the public
  :meth:`~EventLoop.schedule` and the engine's allocation-light internal one), stepping to a
  time (:meth:`~EventLoop.advance_to`) or to the next decision of an external decider;
* :mod:`~dispatch.engine.tasks`: task life -- arrivals, backlog seeding, follow-ups routed by
  decisions, queueing into buckets, expiry;
* :mod:`~dispatch.engine.dispatching`: who takes what -- pull decisions when a reviewer or a
  task becomes free, batch epochs, starting and completing reviews, the validation of every
  decision;
* :mod:`~dispatch.engine.shifts`: reviewers coming on and going off duty.

Only these modules and :mod:`dispatch.simulator` touch SimPy internals or the engine's
private state (a test greps the package for it); everything else uses the public API.
"""

from dispatch.engine.events import EventLoop, InvalidDecision

__all__ = ["EventLoop", "InvalidDecision"]

#!/usr/bin/env python3
"""moto_server with the Auto Scaling lifecycle hooks that moto records but does not act on (lab only).

moto 5.x stores lifecycle hooks and launches a group's instances, but puts every instance InService at
once, terminates on scale-in at once, and answers CompleteLifecycleAction and
RecordLifecycleActionHeartbeat with "not implemented". This wrapper adds what AWS does
(docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html), and nothing else:

* a group with an ``autoscaling:EC2_INSTANCE_LAUNCHING`` hook launches its instances into
  ``Pending:Wait``; CompleteLifecycleAction CONTINUE puts one ``InService``, ABANDON terminates it (the
  group then launches a replacement to keep its desired capacity);
* a group with an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook moves the instances a lower desired
  capacity removes to ``Terminating:Wait``; CompleteLifecycleAction (either result) terminates them;
* an action not completed within the hook's heartbeat timeout (RecordLifecycleActionHeartbeat restarts
  it) takes the hook's default result; the check runs whenever the Auto Scaling API is called;
* waiting instances count toward the desired capacity, as on AWS;
* completing an action for an instance that waits in no hook fails with ValidationError
  ("No active Lifecycle Action found with instance ID ..."), as on AWS.

Started by lab/lab.sh instead of moto_server (same arguments), and by the module tests:

  moto_lifecycle.py -H 0.0.0.0 -p 5001
"""

from __future__ import annotations

import sys
import time

from moto import server
from moto.autoscaling import models, responses
from moto.autoscaling.exceptions import ValidationError
from moto.core.responses import EmptyResult

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAITING = {"Pending:Wait": LAUNCHING, "Terminating:Wait": TERMINATING}
COUNTED = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")

_original_replace = models.FakeAutoScalingGroup.replace_autoscaling_group_instances
_original_set_desired = models.FakeAutoScalingGroup.set_desired_capacity


def _hook(group, transition):
    hooks = [h for h in group.autoscaling_backend.lifecycle_hooks.values()
             if h.auto_scaling_group_name == group.name and h.lifecycle_transition == transition]
    return sorted(hooks, key=lambda h: h.name)[0] if hooks else None


def _wait(state, lifecycle_state, hook):
    state.lifecycle_state = lifecycle_state
    state.lab_hook = hook.name
    state.lab_deadline = time.time() + int(hook.heartbeat_timeout)


def _active_instances(self):
    return [s for s in self.instance_states if s.lifecycle_state in COUNTED]


def _replace_instances(self, count_needed, propagated_tags):
    before = set(id(s) for s in self.instance_states)
    _original_replace(self, count_needed, propagated_tags)
    hook = _hook(self, LAUNCHING)
    if hook:
        for state in self.instance_states:
            if id(state) not in before:
                _wait(state, "Pending:Wait", hook)


def _terminate(group, states):
    if not states:
        return
    group.autoscaling_backend.ec2_backend.terminate_instances([s.instance.id for s in states])
    group.instance_states = [s for s in group.instance_states if s not in states]


def _set_desired_capacity(self, new_capacity):
    hook = _hook(self, TERMINATING)
    mixed = self.mixed_instances_policy and self.mixed_instances_policy.get("LaunchTemplate", {}).get("Overrides")
    if not hook or mixed:
        return _original_set_desired(self, new_capacity)
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    delta = (self.desired_capacity or 0) - len(self.active_instances())
    if delta > 0:
        self.replace_autoscaling_group_instances(delta, self.get_propagated_tags())
    elif delta < 0:
        # AWS's default termination policy prefers instances that are not yet in service; then the oldest.
        candidates = [s for s in self.instance_states if s.lifecycle_state in COUNTED and not s.protected_from_scale_in]
        candidates.sort(key=lambda s: (s.lifecycle_state == "InService",))
        for state in candidates[:-delta]:
            _wait(state, "Terminating:Wait", hook)
    if self.name in self.autoscaling_backend.autoscaling_groups:
        self.autoscaling_backend.update_attached_elbs(self.name)
        self.autoscaling_backend.update_attached_target_groups(self.name)


def _complete(backend, group, state, result):
    """Take ``result`` (CONTINUE or ABANDON) for the action ``state`` waits in."""
    if state.lifecycle_state == "Pending:Wait" and result == "CONTINUE":
        state.lifecycle_state = "InService"
    elif state.lifecycle_state == "Pending:Wait":
        _terminate(group, [state])
        group.set_desired_capacity(group.desired_capacity)  # a replacement, as the group keeps its capacity
    else:
        _terminate(group, [state])


def expire_actions(backend):
    """Actions whose heartbeat timeout has passed take their hook's default result."""
    now = time.time()
    for group in list(backend.autoscaling_groups.values()):
        for state in list(group.instance_states):
            if state.lifecycle_state in WAITING and getattr(state, "lab_deadline", now + 1) <= now:
                hook = backend.lifecycle_hooks.get(f"{group.name}_{getattr(state, 'lab_hook', '')}")
                _complete(backend, group, state, hook.default_result if hook else "ABANDON")


def _find_waiting(backend, group_name, hook_name, instance_id):
    group = backend.autoscaling_groups.get(group_name)
    state = next((s for s in group.instance_states if s.instance.id == instance_id), None) if group else None
    if state is None or state.lifecycle_state not in WAITING or getattr(state, "lab_hook", None) != hook_name:
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
    return group, state


def complete_lifecycle_action(self):
    backend = self.autoscaling_backend
    expire_actions(backend)
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
    group, state = _find_waiting(backend, self._get_param("AutoScalingGroupName"), self._get_param("LifecycleHookName"),
                                 self._get_param("InstanceId"))
    _complete(backend, group, state, result)
    return EmptyResult()


def record_lifecycle_action_heartbeat(self):
    backend = self.autoscaling_backend
    expire_actions(backend)
    _group, state = _find_waiting(backend, self._get_param("AutoScalingGroupName"),
                                  self._get_param("LifecycleHookName"), self._get_param("InstanceId"))
    hook = backend.lifecycle_hooks.get(f"{_group.name}_{state.lab_hook}")
    state.lab_deadline = time.time() + int(hook.heartbeat_timeout if hook else 3600)
    return EmptyResult()


def _expiring(method):
    def wrapper(self):
        expire_actions(self.autoscaling_backend)
        return method(self)
    wrapper.__name__ = method.__name__
    return wrapper


def install():
    models.FakeAutoScalingGroup.active_instances = _active_instances
    models.FakeAutoScalingGroup.replace_autoscaling_group_instances = _replace_instances
    models.FakeAutoScalingGroup.set_desired_capacity = _set_desired_capacity
    responses.AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    responses.AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    for name in ("describe_auto_scaling_instances", "describe_auto_scaling_groups", "set_desired_capacity"):
        setattr(responses.AutoScalingResponse, name, _expiring(getattr(responses.AutoScalingResponse, name)))


def main() -> None:
    install()
    server.main(sys.argv[1:])


if __name__ == "__main__":
    main()

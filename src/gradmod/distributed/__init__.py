"""Data-parallel training with ``torch.distributed``: start with ``torchrun -m gradmod train``.

The Trainer joins the process group that torchrun's environment describes
(``join_process_group``), shards each epoch across ranks, trains through
``TrainableDataParallel`` and keeps the ranks' decisions in step with the
helpers of ``agreement``. A process started without torchrun is a
single-process run and none of this is used.
"""

from gradmod.distributed.agreement import agree_on_stop, broadcast_numbers, sum_step_statistics
from gradmod.distributed.data_parallel import TrainableDataParallel
from gradmod.distributed.environment import BACKENDS, ProcessPlace, choose_backend, detect_torchrun, local_device
from gradmod.distributed.process_group import current_place, join_process_group, leave_process_group

__all__ = [
    "BACKENDS",
    "ProcessPlace",
    "detect_torchrun",
    "choose_backend",
    "local_device",
    "join_process_group",
    "leave_process_group",
    "current_place",
    "TrainableDataParallel",
    "sum_step_statistics",
    "agree_on_stop",
    "broadcast_numbers",
]

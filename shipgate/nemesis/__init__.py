"""The nemesis: fault primitives that read the kernel back (`primitives`) and the fault classes built from them."""

from shipgate.nemesis.primitives import (
    TAG,
    FaultEvidence,
    NemesisError,
    clean_faketime_shm,
    faketime_library,
    heal,
    kill,
    offset_seconds,
    packet_loss,
    partition,
    partition_addresses,
    pause,
    read_clock_offset,
    refuse_once,
    resume,
    skew_env,
)

__all__ = [
    "TAG", "FaultEvidence", "NemesisError", "clean_faketime_shm", "faketime_library", "heal", "kill",
    "offset_seconds", "packet_loss", "partition", "partition_addresses", "pause", "read_clock_offset", "refuse_once",
    "resume", "skew_env",
]

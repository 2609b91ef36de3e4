"""The persistent trading halt — stored in the operations book; see `gradient_pipeline/book/halt.py`.

Re-exported here so monitoring code keeps one import path: `set_halt`, `clear_halt`, `is_halted`, `halt_reason`,
`halt_status`, `halt_history` take a book connection (`gradient_pipeline.book.connect(...)`).
"""

from gradient_pipeline.book.halt import (  # noqa: F401
    HaltStatus,
    clear_halt,
    halt_history,
    halt_reason,
    halt_status,
    is_halted,
    set_halt,
    utcnow,
)

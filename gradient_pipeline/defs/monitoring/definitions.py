"""Monitoring definitions: dashboard assets, monitoring jobs, sensors and schedules."""

import dagster as dg

from gradient_pipeline.defs.monitoring.assets import DASHBOARD_ASSETS, performance_report
from gradient_pipeline.defs.monitoring.jobs import (
    daily_summary_job,
    drawdown_warning_job,
    emergency_stop_job,
    manual_emergency_stop_job,
    monitor_job,
    performance_report_job,
    resume_trading_job,
    send_alert_job,
)
from gradient_pipeline.defs.monitoring.sensors import (
    daily_summary_schedule,
    drawdown_sensor,
    equity_sensor,
    performance_report_schedule,
    run_failure_alert_sensor,
)

defs = dg.Definitions(
    assets=[*DASHBOARD_ASSETS, performance_report],
    jobs=[monitor_job, performance_report_job, drawdown_warning_job, emergency_stop_job, send_alert_job,
          daily_summary_job, manual_emergency_stop_job, resume_trading_job],
    sensors=[equity_sensor, drawdown_sensor, run_failure_alert_sensor],
    schedules=[daily_summary_schedule, performance_report_schedule],
)

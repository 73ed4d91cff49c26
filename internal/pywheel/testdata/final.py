def final(status: PipelineTaskFinalStatus, maybe: Optional[Input[Dataset]] = None) -> str:
    return (f'{status.state} {status.pipeline_job_resource_name} {status.pipeline_task_name} '
            f'{status.error_code} {status.error_message} {maybe}')

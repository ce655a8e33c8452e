"""Extra links of an EMR step's wait, next to the provider's cluster and cluster-logs links.

As the provider's links do, the task stores what a link needs in an XCom while it runs (`persist`);
when the task ends, Airflow turns each into its URL, which the UI's task page shows as a button.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class EmrStepLogsLink(BaseAwsLink):
    """The step's own logs (stdout, stderr, controller) in the S3 console, under the cluster's LogUri."""

    name = "EMR Step Logs"
    key = "emr_step_logs"
    format_str = (
        BASE_AWS_CONSOLE_LINK + "/s3/buckets/{log_bucket}?region={region_name}&prefix={log_prefix}"
        "{job_flow_id}/steps/{step_id}/"
    )


class SparkHistoryServerLink(BaseAwsLink):
    """The step's Spark application in the history server on the cluster's primary node (port
    18080; reached through an SSH tunnel or the VPC, and gone with the cluster: after that, the
    EMR Cluster link's persistent application UI shows it)."""

    name = "Spark History Server"
    key = "spark_history_server"
    format_str = "http://{primary_dns}:18080/history/{application}/jobs/"

"""SAM templates' stacks in the emulator (aws/template.yaml's), deployed as CloudFormation would.

The emulator answers CloudFormation's CreateStack and UpdateStack of a template with the SAM
transform itself (`SamStacks`, in front of moto), synchronously, and deploys aws/template.yaml at
start (`deploy`). moto's CloudFormation runs no transform and models only some resource types and
properties, so:

1. the SAM transform runs here, with AWS's own translator (aws-sam-translator, what CloudFormation
   runs for `Transform: AWS::Serverless-2016-10-31`);
2. moto's CloudFormation creates the stack of what it models (through its API: CreateStack);
3. what it does not model is created here through the services' APIs, with the same properties
   and in dependency order: the resource types of UNMODELLED, and every resource that refers to
   one of them (a Lambda permission on the alias); the properties of DROPPED that its models
   drop (a bucket's public access block and lifecycle, a role's managed policies) or garble (the
   EMR security configuration).

A property of a resource made here that this module cannot apply is an error, never left out
(moto's models may still ignore properties of theirs: the README lists them). The outputs are the
stack's, those naming resources created here resolved here.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from botocore.exceptions import ClientError

from local_cloud.server import ACCOUNT, REGION, client

log = logging.getLogger("local_cloud.stack")
TEMPLATE = Path(__file__).resolve().parents[2] / "aws" / "template.yaml"
STACK_NAME = "ml-scaling"  # docs/aws.md's
# Resource types moto 5.2.5's CloudFormation has no model for.
UNMODELLED = frozenset({"AWS::Lambda::Alias", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage"})
# Properties moto's models of these types drop (or, for the security configuration, keep as
# Python's repr of the dict instead of its JSON): applied again by API.
DROPPED = {
    "AWS::S3::Bucket": frozenset({"PublicAccessBlockConfiguration", "LifecycleConfiguration"}),
    "AWS::IAM::Role": frozenset({"ManagedPolicyArns"}),
    "AWS::EMR::SecurityConfiguration": frozenset({"SecurityConfiguration"}),
}
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_NO_VALUE = object()  # Ref AWS::NoValue: the property is left out


class StackError(RuntimeError):
    """The template cannot be deployed to the emulator: what and why."""


def translate(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation runs it."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The session only names the region and partition: the translator makes no call with it.
    session = boto3.Session(region_name=REGION, aws_access_key_id="unused", aws_secret_access_key="unused")
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    try:
        return dict(translator.translate(json.loads(json.dumps(template)), dict(parameters)))
    except InvalidDocumentException as exc:
        raise StackError("; ".join(str(cause) for cause in exc.causes)) from None


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """A template file (YAML with CloudFormation's short forms, or JSON) as plain data, read as the
    AWS CLI reads it (the translator carries the CLI's loader)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(path.read_text())
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise StackError(f"{path}: not a template (no Resources)")
    return template


@dataclass
class _Deployment:
    """One deployment: the parameters' values, and each resource's physical id and attributes."""

    endpoint: str
    template: dict[str, Any]
    values: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """`value` with its intrinsic functions evaluated."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self._ref(arg)
            if name == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attribute(logical, attribute)
            if name == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else arg
                own = {k: self.resolve(v) for k, v in extra.items()}

                def value_of(found: re.Match[str]) -> str:
                    if found[1].startswith("!"):  # ${!Literal} is written ${Literal}
                        return "${" + found[1][1:] + "}"
                    return str(own[found[1]] if found[1] in own else self._sub(found[1]))

                return re.sub(r"\$\{([^}]+)\}", value_of, text)
            if name == "Fn::Join":
                separator, items = arg
                joined = self.resolve(items)
                if not isinstance(joined, list):
                    raise StackError(f"Fn::Join needs a list, not {type(joined).__name__}")
                return separator.join(str(v) for v in joined)
            if name == "Fn::If":
                condition, yes, no = arg
                return self.resolve(yes if self.conditions[condition] else no)
            if name.startswith("Fn::"):
                raise StackError(f"{name} is not evaluated by the emulator's deployment")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        if name in self.physical:
            return self.physical[name]
        raise StackError(f"Ref {name}: no parameter or created resource of that name")

    def _sub(self, name: str) -> str:
        logical, dot, attribute = name.partition(".")
        return str(self._attribute(logical, attribute) if dot else self._ref(logical))

    def _attribute(self, logical: str, attribute: str) -> str:
        if (logical, attribute) not in self.attributes:
            resource = self.template["Resources"][logical]
            properties = self.resolve(resource.get("Properties", {}))
            self.attributes[logical, attribute] = _read_attribute(
                self.endpoint, resource["Type"], self.physical[logical], properties, attribute
            )
        return self.attributes[logical, attribute]

    def evaluate_conditions(self) -> None:
        definitions = self.template.get("Conditions", {})

        def truth(expression: Any) -> bool:
            ((name, arg),) = expression.items()
            if name == "Fn::Not":
                return not truth(arg[0])
            if name == "Fn::And":
                return all(truth(a) for a in arg)
            if name == "Fn::Or":
                return any(truth(a) for a in arg)
            if name == "Fn::Equals":
                return bool(self.resolve(arg[0]) == self.resolve(arg[1]))
            if name == "Condition":
                return truth(definitions[arg])
            raise StackError(f"condition function {name} is not evaluated by the emulator's deployment")

        self.conditions = {name: truth(expression) for name, expression in definitions.items()}


def _read_attribute(
    endpoint: str, kind: str, physical: str, properties: Mapping[str, Any], attribute: str
) -> str:
    """Fn::GetAtt of a resource moto's CloudFormation created, read through the service's API."""
    if kind == "AWS::Lambda::Version" and attribute == "Version":
        # moto names the version by its logical id (AWS: its ARN); it is the function's newest.
        lam = client(endpoint, "lambda")
        versions = lam.list_versions_by_function(FunctionName=properties["FunctionName"])["Versions"]
        return str(max(int(v["Version"]) for v in versions if v["Version"] != "$LATEST"))
    if kind == "AWS::IAM::Role" and attribute == "Arn":
        return str(client(endpoint, "iam").get_role(RoleName=physical)["Role"]["Arn"])
    if kind == "AWS::Lambda::Function" and attribute == "Arn":
        return client(endpoint, "lambda").get_function(FunctionName=physical)["Configuration"]["FunctionArn"]
    raise StackError(f"Fn::GetAtt of {kind} {attribute} is not read by the emulator's deployment")


def _names(value: Any) -> Iterator[str]:
    """The logical names a value refers to (Ref, Fn::GetAtt, Fn::Sub), pseudo parameters too."""
    if isinstance(value, list):
        for item in value:
            yield from _names(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                yield arg
            elif key == "Fn::GetAtt":
                yield arg[0] if isinstance(arg, list) else arg.split(".", 1)[0]
            elif key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else arg
                own = set(extra)
                names = re.findall(r"\$\{([^}]+)\}", text)
                yield from (m.split(".", 1)[0] for m in names if m not in own and not m.startswith("!"))
                yield from _names(extra)
            else:
                yield from _names(arg)


def _depends_on(resource: Mapping[str, Any]) -> set[str]:
    explicit = resource.get("DependsOn", [])
    return set(_names(resource)) | set([explicit] if isinstance(explicit, str) else explicit)


def _ours(resources: Mapping[str, Any]) -> list[str]:
    """The resources created here, in an order where each comes after what it refers to."""
    ours = {name for name, r in resources.items() if r["Type"] in UNMODELLED}
    while extra := {n for n, r in resources.items() if n not in ours and _depends_on(r) & ours}:
        ours |= extra
    ordered: list[str] = []
    while len(ordered) < len(ours):
        ready = sorted(n for n in ours - set(ordered) if _depends_on(resources[n]) & ours <= set(ordered))
        if not ready:
            raise StackError(f"a circular dependency among {sorted(ours - set(ordered))}")
        ordered += ready
    return ordered


# The properties this module applies, by type (of what it creates, and of lifecycle rules).
HANDLED = {
    "AWS::Lambda::Alias": {"Name", "FunctionName", "FunctionVersion", "Description"},
    "AWS::Lambda::Permission": {"Action", "FunctionName", "Principal", "SourceArn", "SourceAccount"},
    "AWS::ApiGatewayV2::Api": {"Body"},
    "AWS::ApiGatewayV2::Stage": {"ApiId", "StageName", "AutoDeploy", "DefaultRouteSettings", "Tags"},
    "LifecycleRule": {"Id", "Status", "Prefix", "ExpirationInDays", "AbortIncompleteMultipartUpload"},
}


def _refuse_what_is_not_applied(resources: Mapping[str, Any], ours: list[str]) -> None:
    """Before anything is made: a property this module would have to apply and cannot."""
    for name in ours:
        kind, properties = resources[name]["Type"], resources[name].get("Properties", {})
        if kind not in HANDLED:
            raise StackError(f"{name}: {kind} is created neither by moto nor by the emulator")
        if unknown := sorted(set(properties) - HANDLED[kind]):
            raise StackError(f"{name}: {kind} property(ies) {', '.join(unknown)} are not applied offline")
    for name, resource in resources.items():
        lifecycle = resource.get("Properties", {}).get("LifecycleConfiguration", {})
        for rule in lifecycle.get("Rules", []) if resource["Type"] == "AWS::S3::Bucket" else []:
            if unknown := sorted(set(rule) - HANDLED["LifecycleRule"]):
                raise StackError(
                    f"{name}: lifecycle rule field(s) {', '.join(unknown)} are not applied offline"
                )


class StackExists(StackError):
    """CreateStack of a stack that exists (AWS: AlreadyExistsException)."""


class MissingCapability(StackError):
    """A capability the template needs was not acknowledged (AWS: InsufficientCapabilitiesException)."""


def deploy(
    endpoint: str,
    source: Mapping[str, Any],
    parameters: Mapping[str, str | None],
    stack_name: str,
    *,
    update: bool | None = None,
    capabilities: set[str] | None = None,
) -> str:
    """Create (`update` False) or update (True) the stack `stack_name` from a SAM template in the
    emulator at `endpoint`, whose process this runs in (it completes moto's stack there); `update`
    None: whichever applies. A parameter given as None keeps its previous value (UsePreviousValue);
    `capabilities` None: not checked (the emulator's own deployment). Returns the stack's id."""
    previous = _previous_parameters(endpoint, stack_name)
    if update is False and previous is not None:
        raise StackExists(f"Stack [{stack_name}] already exists")
    if update is True and previous is None:
        raise StackError(f"Stack [{stack_name}] does not exist")
    given, values = _parameter_values(source.get("Parameters", {}), parameters, previous)
    template = translate(source, values)
    resources: dict[str, Any] = template["Resources"]
    if capabilities is not None:
        _check_capabilities(resources, capabilities)
    run = _Deployment(endpoint, template, values | PSEUDO | {"AWS::StackName": stack_name})
    run.evaluate_conditions()
    ours = _ours(resources)
    _refuse_what_is_not_applied(resources, ours)
    outputs = template.get("Outputs", {})
    later = {name for name, o in outputs.items() if set(_names(o)) & set(ours)}

    # moto's part: everything it models, and the outputs that name only those.
    modelled = dict(template, Resources={n: r for n, r in resources.items() if n not in ours})
    modelled["Outputs"] = {n: o for n, o in outputs.items() if n not in later}
    cfn = client(endpoint, "cloudformation")
    request = cfn.update_stack if previous is not None else cfn.create_stack
    stack_id = request(
        StackName=stack_name,
        TemplateBody=json.dumps(modelled),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
        Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )["StackId"]
    (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise StackError(f"stack {stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    summaries = cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    # moto lists a resource its condition left out as an entry with empty names.
    run.physical = {
        s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s["LogicalResourceId"]
    }

    for name in sorted(run.physical):
        resource = resources[name]
        dropped = DROPPED.get(resource["Type"], frozenset()) & set(resource.get("Properties", {}))
        for prop in sorted(dropped):
            _APPLY[resource["Type"], prop](
                endpoint, run.physical[name], run.resolve(resource["Properties"][prop])
            )
    for name in ours:
        resource = resources[name]
        if "Condition" in resource and not run.conditions[resource["Condition"]]:
            continue
        create = _CREATE[resource["Type"]]
        run.physical[name], attributes = create(endpoint, run.resolve(resource.get("Properties", {})))
        run.attributes |= {(name, a): v for a, v in attributes.items()}

    # The outputs naming what was made here, in moto's stack as literals: DescribeStacks shows them.
    resolved = {}
    for name in sorted(later):
        output = outputs[name]
        if "Condition" in output and not run.conditions[output["Condition"]]:
            continue
        value = run.resolve(output["Value"])
        if value is not _NO_VALUE:
            resolved[name] = dict(output, Value=str(value))
    _add_outputs(stack_id, resolved)
    return str(stack_id)


def _parameter_values(
    known: Mapping[str, Any], parameters: Mapping[str, str | None], previous: Mapping[str, str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The parameters as given (a None: its previous value) and every parameter's value."""
    if unknown := sorted(set(parameters) - set(known)):
        raise StackError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    given: dict[str, str] = {}
    for name, value in parameters.items():
        if value is not None:
            given[name] = str(value)
        elif previous is not None and name in previous:
            given[name] = previous[name]
        else:
            raise StackError(f"Invalid input for parameter key {name}: it has no previous value to use")
    values = {name: str(p["Default"]) for name, p in known.items() if "Default" in p} | given
    if missing := sorted(set(known) - set(values)):
        raise StackError(f"Parameters: [{', '.join(missing)}] must have values")
    for name, value in values.items():
        _check_parameter(name, known[name], value)
    return given, values


def _previous_parameters(endpoint: str, stack_name: str) -> dict[str, str] | None:
    """The parameters of the stack if it exists, else None."""
    cfn = client(endpoint, "cloudformation")
    live = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == stack_name]
    if not any(s["StackStatus"] != "DELETE_COMPLETE" for s in live):
        return None
    (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def _check_parameter(name: str, declared: Mapping[str, Any], value: str) -> None:
    """What CloudFormation checks of a String parameter's value before anything is made."""
    pattern = declared.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise StackError(f"Parameter '{name}' must match pattern {pattern}")
    allowed = declared.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        raise StackError(f"Parameter '{name}' must be one of AllowedValues")


def _check_capabilities(resources: Mapping[str, Any], given: set[str]) -> None:
    """IAM resources need CAPABILITY_IAM, named ones CAPABILITY_NAMED_IAM (after the transform,
    which makes roles of its own)."""
    iam = [r for r in resources.values() if str(r.get("Type", "")).startswith("AWS::IAM::")]
    named = {"RoleName", "InstanceProfileName", "UserName", "GroupName", "ManagedPolicyName"}
    if any(named & set(r.get("Properties", {})) for r in iam) and "CAPABILITY_NAMED_IAM" not in given:
        raise MissingCapability("Requires capabilities : [CAPABILITY_NAMED_IAM]")
    if iam and not given & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}:
        raise MissingCapability("Requires capabilities : [CAPABILITY_IAM]")


def _add_outputs(stack_id: str, outputs: Mapping[str, Any]) -> None:
    from moto.cloudformation.models import cloudformation_backends

    stack = cloudformation_backends[ACCOUNT][REGION].stacks[stack_id]
    stack.template_dict.setdefault("Outputs", {}).update(outputs)
    stack.output_map = stack._create_output_map()


class SamStacks:
    """WSGI middleware: CloudFormation's CreateStack and UpdateStack of a template with the SAM
    transform, answered by `deploy` (synchronously: the stack is complete when the answer is sent);
    every other request goes to `app` (moto). `endpoint` is set once the server listens."""

    def __init__(self, app: Callable[..., Any]):
        self._app = app
        self.endpoint = ""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST" or "cloudformation" not in environ.get(
            "HTTP_AUTHORIZATION", ""
        ):
            return cast(Iterable[bytes], self._app(environ, start_response))
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        action = form.get("Action")
        template = (
            _sam_template(form.get("TemplateBody", "")) if action in ("CreateStack", "UpdateStack") else None
        )
        if template is None:
            return cast(Iterable[bytes], self._app(environ, start_response))
        capabilities = {v for k, v in form.items() if k.startswith("Capabilities.member.")}
        if "CAPABILITY_AUTO_EXPAND" not in capabilities:
            return _error(
                start_response,
                "InsufficientCapabilitiesException",
                "Requires capabilities : [CAPABILITY_AUTO_EXPAND]",
            )
        parameters: dict[str, str | None] = {}
        for key in form:
            if key.startswith("Parameters.member.") and key.endswith(".ParameterKey"):
                member = key.removesuffix(".ParameterKey")
                if form.get(f"{member}.UsePreviousValue") == "true":
                    parameters[form[key]] = None
                else:
                    parameters[form[key]] = form.get(f"{member}.ParameterValue", "")
        try:
            stack_id = deploy(
                self.endpoint,
                template,
                parameters,
                form["StackName"],
                update=action == "UpdateStack",
                capabilities=capabilities,
            )
        except StackExists as exc:
            return _error(start_response, "AlreadyExistsException", str(exc))
        except MissingCapability as exc:
            return _error(start_response, "InsufficientCapabilitiesException", str(exc))
        except StackError as exc:
            return _error(start_response, "ValidationError", str(exc))
        except Exception as exc:  # the emulator's own failure: a 400 botocore does not retry
            log.exception("stack %s: the emulator could not deploy it", form["StackName"])
            return _error(start_response, "ValidationError", f"the emulator could not deploy it: {exc}")
        payload = (
            f'<{action}Response xmlns="{_XMLNS}"><{action}Result><StackId>{stack_id}</StackId>'
            f"</{action}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            f"</ResponseMetadata></{action}Response>"
        ).encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
        return [payload]


_XMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def _sam_template(body: str) -> dict[str, Any] | None:
    """The template if it declares the SAM transform, else None (moto's to answer)."""
    from samtranslator.yaml_helper import yaml_parse

    try:
        template = yaml_parse(body)
    except Exception:  # not YAML or JSON: moto answers as CloudFormation does
        return None
    if not isinstance(template, dict):
        return None
    transform = template.get("Transform", [])
    return (
        template
        if "AWS::Serverless-2016-10-31" in ([transform] if isinstance(transform, str) else transform)
        else None
    )


def _error(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    payload = (
        f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{xml_escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
    return [payload]


# What moto's models drop, applied through the API ---------------------------------------------

_Apply = Callable[[str, str, Any], None]


def _public_access_block(endpoint: str, bucket: str, config: Any) -> None:
    client(endpoint, "s3").put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)


def _lifecycle(endpoint: str, bucket: str, config: dict[str, Any]) -> None:
    """CloudFormation's lifecycle rules in S3's API shape (only the fields the template uses)."""
    rules: list[Any] = []
    for rule in config["Rules"]:
        api: dict[str, Any] = {
            "ID": rule["Id"],
            "Status": rule["Status"],
            "Filter": {"Prefix": rule.get("Prefix", "")},
        }
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        rules.append(api)
    client(endpoint, "s3").put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )


def _managed_policies(endpoint: str, role: str, arns: list[str]) -> None:
    iam = client(endpoint, "iam")
    for arn in arns:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)


def _security_configuration(endpoint: str, name: str, config: dict[str, Any]) -> None:
    emr = client(endpoint, "emr")
    emr.delete_security_configuration(Name=name)
    emr.create_security_configuration(Name=name, SecurityConfiguration=json.dumps(config))


_APPLY: dict[tuple[str, str], _Apply] = {
    ("AWS::EMR::SecurityConfiguration", "SecurityConfiguration"): _security_configuration,
    ("AWS::S3::Bucket", "PublicAccessBlockConfiguration"): _public_access_block,
    ("AWS::S3::Bucket", "LifecycleConfiguration"): _lifecycle,
    ("AWS::IAM::Role", "ManagedPolicyArns"): _managed_policies,
}

# What moto does not model, created through the API: physical id and attributes -----------------

_Create = Callable[[str, dict[str, Any]], tuple[str, dict[str, str]]]


def _alias(endpoint: str, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    lam = client(endpoint, "lambda")
    extra = {"Description": p["Description"]} if "Description" in p else {}
    names = {"FunctionName": p["FunctionName"], "Name": p["Name"], "FunctionVersion": p["FunctionVersion"]}
    try:
        alias = lam.create_alias(**names, **extra)
    except ClientError as exc:
        # An update of the stack: the alias moves. AWS answers ResourceConflictException, moto
        # ConflictException.
        if exc.response["Error"]["Code"] not in ("ResourceConflictException", "ConflictException"):
            raise
        alias = lam.update_alias(**names, **extra)
    return alias["AliasArn"], {"AliasArn": alias["AliasArn"]}


def _permission(endpoint: str, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    lam = client(endpoint, "lambda")
    # The function may be named by an alias's ARN: its qualifier is the ARN's last part.
    function, qualifier = p["FunctionName"], None
    if function.startswith("arn:") and function.count(":") == 7:
        function, qualifier = function.rsplit(":", 1)
    # Named by its properties, as CloudFormation names it once: an update with the same
    # properties finds it there.
    statement = "stack-" + hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12]
    extra = {k: p[k] for k in ("SourceArn", "SourceAccount") if k in p}
    qualified = {"Qualifier": qualifier} if qualifier else {}
    try:
        policy = json.loads(lam.get_policy(FunctionName=function, **qualified)["Policy"])
    except lam.exceptions.ResourceNotFoundException:  # no statement yet
        policy = {"Statement": []}
    if any(grant.get("Sid") == statement for grant in policy["Statement"]):
        return statement, {}  # granted by an earlier deployment (moto would add it twice)
    lam.add_permission(
        FunctionName=function,
        StatementId=statement,
        Action=p["Action"],
        Principal=p["Principal"],
        **extra,
        **qualified,
    )
    return statement, {}


def _http_api(endpoint: str, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """CloudFormation imports the OpenAPI `Body`; here: the API by its title, then ReimportApi
    (moto has no ImportApi), which replaces the routes and integrations of an earlier deployment."""
    apis = client(endpoint, "apigatewayv2")
    title = p["Body"]["info"]["title"]
    found = [a for a in apis.get_apis()["Items"] if a["Name"] == title]
    api_id = found[0]["ApiId"] if found else apis.create_api(Name=title, ProtocolType="HTTP")["ApiId"]
    api = apis.reimport_api(ApiId=api_id, Body=json.dumps(p["Body"]), FailOnWarnings=True)
    return api_id, {"ApiEndpoint": api["ApiEndpoint"]}


def _stage(endpoint: str, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    apis = client(endpoint, "apigatewayv2")
    extra = {k: p[k] for k in ("AutoDeploy", "DefaultRouteSettings", "Tags") if k in p}
    if any(s["StageName"] == p["StageName"] for s in apis.get_stages(ApiId=p["ApiId"])["Items"]):
        apis.delete_stage(ApiId=p["ApiId"], StageName=p["StageName"])  # moto has no UpdateStage
    apis.create_stage(ApiId=p["ApiId"], StageName=p["StageName"], **extra)
    return str(p["StageName"]), {}


_CREATE: dict[str, _Create] = {
    "AWS::Lambda::Alias": _alias,
    "AWS::Lambda::Permission": _permission,
    "AWS::ApiGatewayV2::Api": _http_api,
    "AWS::ApiGatewayV2::Stage": _stage,
}

#!/usr/bin/env python3
"""Create template.yaml's resources in a moto_server, so that tests and the local stack
run against the same tables, queues and buckets the SAM template deploys to AWS.

    python3 infra/moto-provision.py --endpoint http://127.0.0.1:PORT \
        [--template template.yaml] [--stack-name runnerhub-local] [--region us-east-1] \
        [--parameter Key=Value ...] [--with-functions]

Steps:
  1. Read the SAM template and replace local CodeUri/ContentUri values with a placeholder
     s3:// location (samtranslator only accepts what `sam package` would write).
  2. Translate the AWS::Serverless-2016-10-31 transform with samtranslator (moto's own
     CloudFormation does not apply it: it skips serverless resources and still reports
     CREATE_COMPLETE).
  3. Create the plain resources directly through the service APIs, in dependency order,
     resolving Ref / Fn::GetAtt / Fn::Sub / Fn::Join / Fn::If / ... ourselves, with names
     shaped like CloudFormation's ("<stack>-<LogicalId>-<RANDOM>"), so that one moto can
     hold several independent copies (one per stack name).
  4. Print {"EventsTable", "EventsQueueUrl", "EventsDLQUrl", "DemandQueueUrl",
     "FanoutQueueUrl", "PayloadBucket", "Region", "StackName", "Resources": {logical id: physical id}} as
     JSON on stdout.

Why not moto's CloudFormation (create_stack)? It works for the basics, but silently drops
much of what the template says: a DynamoDB table's TimeToLiveSpecification, point-in-time
recovery and SSE, and a bucket's LifecycleConfiguration and PublicAccessBlockConfiguration
(checked with moto 5.2.1). Creating the resources ourselves keeps every property that
moto can represent, takes a few tens of milliseconds, and states plainly what is left out.

What is deliberately NOT created in moto:
  * AWS::Lambda::EventSourceMapping — with a mapping on a queue, moto's SendMessage
    synchronously receives the batch and invokes the function (in Docker) from inside the
    SendMessage call; the messages are then deleted or made visible again with their
    receive count raised. A test could never receive what it sent, and the DLQ redrive
    count would be wrong. The processor is driven by the tests/local stack instead.
  * AWS::Lambda::Function, AWS::IAM::Role — nothing in moto would run them; pass
    --with-functions to create roles and functions anyway (the placeholder zip is then
    uploaded to moto's S3), e.g. to check the template's environment wiring.
    AWS::Lambda::Permission is never created (it points at the HTTP API, see below).
  * AWS::S3::BucketPolicy — moto evaluates bucket policies on object requests but ignores
    their Condition blocks, so the template's "deny s3:* unless aws:SecureTransport" would
    deny every request. The policy only matters on AWS.
  * AWS::ApiGatewayV2::* — moto's API Gateway does not route to functions; the handlers are
    served by net/http locally. An Api still gets a placeholder id (10 characters, like
    API Gateway's), so that functions whose environment names it can be created.
Anything else unknown is listed on stderr and skipped.

Only the standard library, boto3 and samtranslator are used.
"""

import argparse
import copy
import io
import json
import os
import random
import re
import string
import sys
import zipfile

PLACEHOLDER_BUCKET = "runnerhub-moto-code"
PLACEHOLDER_KEY = "placeholder/bootstrap.zip"
PLACEHOLDER_URI = f"s3://{PLACEHOLDER_BUCKET}/{PLACEHOLDER_KEY}"
# Value given to parameters that have no default (NoEcho secrets): moto never checks them.
PARAMETER_PLACEHOLDER = "moto-local-placeholder-value-0123456789"

REQUIRED_OUTPUTS = {
    "EventsTable": ("EventsTable", "name"),
    "EventsQueueUrl": ("EventsQueue", "url"),
    "EventsDLQUrl": ("EventsDLQ", "url"),
    "DemandQueueUrl": ("DemandQueue", "url"),
    "FanoutQueueUrl": ("FanoutQueue", "url"),
    "PayloadBucket": ("PayloadBucket", "name"),
}

SKIPPED_TYPES = {
    "AWS::Lambda::EventSourceMapping": "moto would invoke the function on every SendMessage",
    "AWS::S3::BucketPolicy": "moto ignores policy Conditions and would deny every request",
    "AWS::Lambda::Permission": "grants the HTTP API, which is not created in moto",
    "AWS::ApiGatewayV2::Api": "handlers are served by net/http locally",
    "AWS::ApiGatewayV2::Stage": "handlers are served by net/http locally",
    "AWS::ApiGatewayV2::Route": "handlers are served by net/http locally",
    "AWS::ApiGatewayV2::Integration": "handlers are served by net/http locally",
    "AWS::ApiGatewayV2::Deployment": "handlers are served by net/http locally",
    "AWS::ApiGatewayV2::Authorizer": "handlers are served by net/http locally",
}
FUNCTION_TYPES = {"AWS::Lambda::Function", "AWS::IAM::Role"}


def log(msg):
    print(f"moto-provision: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- translate


def _is_local_uri(value):
    return value is None or (isinstance(value, str) and not value.startswith("s3://"))


def substitute_code_uris(template):
    """Point local CodeUri/ContentUri values (e.g. "." for BuildMethod: makefile) at the
    placeholder s3:// location."""
    glob = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in glob and _is_local_uri(glob["CodeUri"]):
        glob["CodeUri"] = PLACEHOLDER_URI
    for res in template.get("Resources", {}).values():
        props = res.setdefault("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            if props.get("InlineCode") is not None or props.get("ImageUri") is not None:
                continue
            if "CodeUri" in props:
                if _is_local_uri(props["CodeUri"]):
                    props["CodeUri"] = PLACEHOLDER_URI
            elif "CodeUri" not in glob:
                props["CodeUri"] = PLACEHOLDER_URI
        elif res.get("Type") == "AWS::Serverless::LayerVersion":
            if _is_local_uri(props.get("ContentUri")):
                props["ContentUri"] = PLACEHOLDER_URI


class _NoManagedPolicies:
    """samtranslator asks IAM for managed policy ARNs only for policies named without an
    ARN; the template uses inline statements, so no lookup is needed."""

    def load(self):
        return {}


def translate(template, region, parameter_values):
    """Apply the SAM transform to a parsed template (which is modified)."""
    os.environ["AWS_DEFAULT_REGION"] = region  # samtranslator reads it for ARNs/partitions
    from samtranslator.translator.transform import transform

    substitute_code_uris(template)
    return transform(template, dict(parameter_values), _NoManagedPolicies())


# --------------------------------------------------------------------------- intrinsics

_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    def __init__(self, template, params, region, stack_name, account_id_fn):
        self.template = template
        self.params = params
        self.region = region
        self.stack_name = stack_name
        self.account_id_fn = account_id_fn
        self.physical = {}  # logical id -> Ref value
        self.attrs = {}  # logical id -> {attribute: value}
        self.conditions = {}
        for name in template.get("Conditions", {}):
            self.conditions[name] = None

    def pseudo(self, name):
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": lambda: self.account_id_fn(),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:000000000000:stack/{self.stack_name}/local",
            "AWS::NoValue": None,
        }.get(name, KeyError)

    def ref(self, name):
        if name.startswith("AWS::"):
            v = self.pseudo(name)
            if v is KeyError:
                raise ValueError(f"unknown pseudo parameter {name}")
            return v() if callable(v) else v
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        raise ValueError(f"Ref to {name}, which is not (yet) created in moto")

    def getatt(self, logical, attr):
        try:
            return self.attrs[logical][attr]
        except KeyError:
            raise ValueError(f"Fn::GetAtt {logical}.{attr} is not available in moto") from None

    def condition(self, name):
        if self.conditions.get(name) is None:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def sub(self, text, variables):
        def repl(m):
            key = m.group(1).strip()
            if key in variables:
                return str(variables[key])
            if "." in key and not key.startswith("AWS::"):
                logical, attr = key.split(".", 1)
                return str(self.getatt(logical, attr))
            return str(self.ref(key))

        return _SUB_RE.sub(repl, text).replace("${!", "${")

    def resolve(self, node):
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not _NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                v = self.ref(arg)
                return _NOVALUE if v is None and arg == "AWS::NoValue" else v
            if key == "Fn::GetAtt":
                logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.getatt(logical, self.resolve(attr))
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            if key == "Fn::Select":
                idx, items = arg
                return self.resolve(items)[int(self.resolve(idx))]
            if key == "Fn::Split":
                sep, text = arg
                return self.resolve(text).split(sep)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAZs":
                return [f"{self.region}{z}" for z in "abc"]
            if key.startswith("Fn::"):
                raise ValueError(f"{key} is not supported by moto-provision.py")
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not _NOVALUE:
                out[k] = r
        return out


_NOVALUE = object()


def references(node, out):
    """Collect the logical ids a node refers to (Ref, Fn::GetAtt, ${X} / ${X.Attr} in Fn::Sub)."""
    if isinstance(node, list):
        for v in node:
            references(v, out)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v.split(".", 1)[0] if isinstance(v, str) else v[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                for m in _SUB_RE.finditer(text):
                    out.add(m.group(1).split(".", 1)[0].strip())
                if not isinstance(v, str):
                    references(v[1], out)
            else:
                references(v, out)
    return out


# --------------------------------------------------------------------------- naming

_ALNUM = string.ascii_uppercase + string.digits


def cfn_name(stack, logical, max_len, lower=False, suffix=""):
    rnd = "".join(random.choice(_ALNUM) for _ in range(12))
    room = max_len - len(suffix) - len(rnd) - 2
    base = f"{stack}-{logical}"
    if len(base) > room:
        base = base[:room]
    name = f"{base}-{rnd}{suffix}"
    return name.lower() if lower else name


# --------------------------------------------------------------------------- creators


class Provisioner:
    def __init__(self, endpoint, region, stack_name, with_functions):
        import boto3
        from botocore.config import Config

        self.session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            region_name=region,
        )
        self.cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"})
        self.endpoint = endpoint
        self.region = region
        self.stack_name = stack_name
        self.with_functions = with_functions
        self._clients = {}
        self._account = None

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint, config=self.cfg)
        return self._clients[service]

    def account_id(self):
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    # DynamoDB ------------------------------------------------------------------

    def dynamodb_table(self, logical, p, r):
        ddb = self.client("dynamodb")
        name = p.get("TableName") or cfn_name(self.stack_name, logical, 255)
        args = {
            "TableName": name,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in p:
            args["ProvisionedThroughput"] = _ints(p["ProvisionedThroughput"])
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in p:
                args[key] = [_strip(ix, ("ContributorInsightsSpecification",)) for ix in p[key]]
                for ix in args[key]:
                    if "ProvisionedThroughput" in ix:
                        ix["ProvisionedThroughput"] = _ints(ix["ProvisionedThroughput"])
        if "SSESpecification" in p:
            sse = p["SSESpecification"]
            args["SSESpecification"] = {"Enabled": _bool(sse.get("SSEEnabled", False))}
            if "SSEType" in sse:
                args["SSESpecification"]["SSEType"] = sse["SSEType"]
            if "KMSMasterKeyId" in sse:
                args["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
        if "StreamSpecification" in p:
            args["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": p["StreamSpecification"]["StreamViewType"],
            }
        if "Tags" in p:
            args["Tags"] = p["Tags"]
        if "DeletionProtectionEnabled" in p:
            args["DeletionProtectionEnabled"] = _bool(p["DeletionProtectionEnabled"])
        desc = ddb.create_table(**args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and _bool(ttl.get("Enabled", False)):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr and _bool(pitr.get("PointInTimeRecoveryEnabled", False)):
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        attrs = {"Arn": desc["TableArn"]}
        if "LatestStreamArn" in desc:
            attrs["StreamArn"] = desc["LatestStreamArn"]
        return name, attrs, {"name": name}

    # SQS -----------------------------------------------------------------------

    _SQS_ATTRS = (
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "DelaySeconds",
        "FifoQueue",
        "FifoThroughputLimit",
        "KmsDataKeyReusePeriodSeconds",
        "KmsMasterKeyId",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "RedriveAllowPolicy",
        "RedrivePolicy",
        "SqsManagedSseEnabled",
        "VisibilityTimeout",
    )

    def sqs_queue(self, logical, p, r):
        sqs = self.client("sqs")
        fifo = _bool(p.get("FifoQueue", False))
        name = p.get("QueueName") or cfn_name(self.stack_name, logical, 80, suffix=".fifo" if fifo else "")
        attributes = {}
        for key in self._SQS_ATTRS:
            if key not in p:
                continue
            v = p[key]
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            elif isinstance(v, bool):
                v = "true" if v else "false"
            attributes[key] = str(v)
        args = {"QueueName": name, "Attributes": attributes}
        if "Tags" in p:
            args["tags"] = {t["Key"]: t["Value"] for t in p["Tags"]}
        url = sqs.create_queue(**args)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}, {"url": url, "name": name}

    # S3 ------------------------------------------------------------------------

    def s3_bucket(self, logical, p, r):
        s3 = self.client("s3")
        name = p.get("BucketName") or cfn_name(self.stack_name, logical, 63, lower=True)
        args = {"Bucket": name}
        if self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(**args)
        if "PublicAccessBlockConfiguration" in p:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={k: _bool(v) for k, v in p["PublicAccessBlockConfiguration"].items()},
            )
        if "OwnershipControls" in p:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
        if "BucketEncryption" in p:
            rules = []
            for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                out = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                if "BucketKeyEnabled" in rule:
                    out["BucketKeyEnabled"] = _bool(rule["BucketKeyEnabled"])
                rules.append(out)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "VersioningConfiguration" in p:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=p["VersioningConfiguration"])
        if "LifecycleConfiguration" in p:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_lifecycle_rule(x) for x in p["LifecycleConfiguration"]["Rules"]]},
            )
        if "Tags" in p:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": p["Tags"]})
        attrs = {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
        }
        return name, attrs, {"name": name}

    # IAM / Lambda (only with --with-functions) ---------------------------------

    def iam_role(self, logical, p, r):
        iam = self.client("iam")
        name = p.get("RoleName") or cfn_name(self.stack_name, logical, 64)
        role = iam.create_role(
            RoleName=name,
            Path=p.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]),
        )["Role"]
        for pol in p.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=pol["PolicyName"], PolicyDocument=json.dumps(pol["PolicyDocument"])
            )
        for arn in p.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            except iam.exceptions.NoSuchEntityException:
                # moto knows AWS managed policies (AWSLambdaBasicExecutionRole, ...) only
                # when started with MOTO_IAM_LOAD_MANAGED_POLICIES=true; nothing checks them.
                if not arn.startswith("arn:aws:iam::aws:policy/"):
                    raise
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}, {"name": name}

    def lambda_function(self, logical, p, r):
        lam = self.client("lambda")
        name = p.get("FunctionName") or cfn_name(self.stack_name, logical, 64)
        code = p["Code"]
        args = {
            "FunctionName": name,
            "Role": p["Role"],
            "Code": {"S3Bucket": code["S3Bucket"], "S3Key": code["S3Key"]},
            "PackageType": "Zip",
        }
        for key in ("Runtime", "Handler", "Description", "Architectures"):
            if key in p:
                args[key] = p[key]
        for key in ("Timeout", "MemorySize"):
            if key in p:
                args[key] = int(p[key])
        if "Environment" in p:
            args["Environment"] = {"Variables": {k: str(v) for k, v in p["Environment"].get("Variables", {}).items()}}
        fn = lam.create_function(**args)
        return name, {"Arn": fn["FunctionArn"]}, {"name": name}

    def upload_placeholder_zip(self):
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=PLACEHOLDER_BUCKET)
        except Exception:
            s3.create_bucket(Bucket=PLACEHOLDER_BUCKET)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            z.writestr(info, "#!/bin/sh\necho 'placeholder: build the real bootstrap with sam build' >&2\nexit 1\n")
        s3.put_object(Bucket=PLACEHOLDER_BUCKET, Key=PLACEHOLDER_KEY, Body=buf.getvalue())

    # ---------------------------------------------------------------------------

    def creators(self):
        c = {
            "AWS::DynamoDB::Table": self.dynamodb_table,
            "AWS::SQS::Queue": self.sqs_queue,
            "AWS::S3::Bucket": self.s3_bucket,
        }
        if self.with_functions:
            c.update(
                {
                    "AWS::IAM::Role": self.iam_role,
                    "AWS::Lambda::Function": self.lambda_function,
                }
            )
        return c

    def provision(self, template, params):
        creators = self.creators()
        resources = template.get("Resources", {})
        resolver = Resolver(template, params, self.region, self.stack_name, self.account_id)
        todo = {}
        for logical, res in resources.items():
            rtype = res.get("Type")
            if rtype in creators:
                if "Condition" in res and not resolver.condition(res["Condition"]):
                    continue
                todo[logical] = res
            elif rtype in SKIPPED_TYPES:
                if rtype == "AWS::ApiGatewayV2::Api":
                    # Not created, but functions name it (the WebSocket API's endpoint in
                    # their environment): a placeholder id lets those references resolve.
                    resolver.physical[logical] = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(10))
            elif rtype in FUNCTION_TYPES:
                pass  # only with --with-functions
            else:
                log(f"skipping {logical} ({rtype}): not created in moto")
        if self.with_functions:
            self.upload_placeholder_zip()

        order = _topological(todo)
        details = {}
        for logical in order:
            res = todo[logical]
            props = resolver.resolve(res.get("Properties", {}))
            physical, attrs, info = creators[res["Type"]](logical, props, res)
            resolver.physical[logical] = physical
            resolver.attrs[logical] = attrs
            details[logical] = info
        return resolver.physical, details


def _topological(todo):
    deps = {k: references(v, set()) & set(todo) - {k} for k, v in todo.items()}
    order, done = [], set()

    def visit(k, stack):
        if k in done:
            return
        if k in stack:
            raise ValueError(f"circular reference through {k}")
        for d in sorted(deps[k]):
            visit(d, stack | {k})
        done.add(k)
        order.append(k)

    for k in todo:  # template order, dependencies first
        visit(k, frozenset())
    return order


def _bool(v):
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v)


def _ints(d):
    return {k: int(v) for k, v in d.items()}


def _strip(d, keys):
    d = copy.deepcopy(d)
    for k in keys:
        d.pop(k, None)
    return d


def _lifecycle_rule(rule):
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    out = {"Status": rule["Status"]}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    flt = {}
    if "Prefix" in rule:
        flt["Prefix"] = rule["Prefix"]
    if "TagFilters" in rule:
        tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule["TagFilters"]]
        if len(tags) == 1 and not flt:
            flt["Tag"] = tags[0]
        else:
            flt = {"And": dict(flt, Tags=tags)}
    out["Filter"] = flt or {"Prefix": ""}
    exp = {}
    if "ExpirationInDays" in rule:
        exp["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        exp["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        exp["ExpiredObjectDeleteMarker"] = _bool(rule["ExpiredObjectDeleteMarker"])
    if exp:
        out["Expiration"] = exp
    if "NoncurrentVersionExpiration" in rule:
        nve = rule["NoncurrentVersionExpiration"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(nve["NoncurrentDays"])}
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return out


# --------------------------------------------------------------------------- main


def parameter_values(template, overrides):
    params = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            params[name] = overrides[name]
        elif "Default" in spec:
            params[name] = spec["Default"]
        else:
            params[name] = PARAMETER_PLACEHOLDER
    for name in overrides:
        if name not in params:
            raise SystemExit(f"moto-provision: --parameter {name}: the template has no such parameter")
    return params


def _cache_path(cache_dir, source, region, overrides):
    import hashlib

    try:
        from importlib.metadata import version

        sam_version = version("aws-sam-translator")
    except Exception:
        sam_version = "unknown"
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(source)
    h.update(json.dumps([region, sorted(overrides.items()), sam_version]).encode())
    return os.path.join(cache_dir, f"translated-{h.hexdigest()[:32]}.json")


def cached_translation(cache_dir, source, region, overrides):
    if not cache_dir:
        return None, None
    try:
        with open(_cache_path(cache_dir, source, region, overrides), encoding="utf-8") as f:
            doc = json.load(f)
        return doc["template"], doc["parameters"]
    except (OSError, ValueError, KeyError):
        return None, None


def store_translation(cache_dir, source, region, overrides, translated, params):
    if not cache_dir:
        return
    path = _cache_path(cache_dir, source, region, overrides)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"template": translated, "parameters": params}, f)
        os.replace(tmp, path)  # atomic: concurrent test packages may race here
    except OSError as e:
        log(f"not caching the translation: {e}")


def wait_for(endpoint, seconds):
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(endpoint.rstrip("/") + "/moto-api/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() > deadline:
                raise SystemExit(f"moto-provision: {endpoint} did not answer within {seconds:g}s: {e}")
            time.sleep(0.02)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto_server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--template", default="template.yaml")
    ap.add_argument("--stack-name", default="runnerhub-local")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    ap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                    help="template parameter override (repeatable)")
    ap.add_argument("--cache-dir", help="keep translated templates here (keyed by a hash of the "
                    "template, region, parameters, this script and samtranslator's version); "
                    "saves the ~0.7 s samtranslator import on later runs")
    ap.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                    help="wait up to SECONDS for the endpoint to answer (after the imports, so "
                    "that starting moto_server and this script can overlap)")
    ap.add_argument("--with-functions", action="store_true",
                    help="also create IAM roles and Lambda functions (never event source mappings)")
    args = ap.parse_args(argv)

    overrides = {}
    for kv in args.parameter:
        k, sep, v = kv.partition("=")
        if not sep:
            ap.error(f"--parameter {kv!r}: want KEY=VALUE")
        overrides[k] = v

    os.environ["AWS_DEFAULT_REGION"] = args.region
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

    with open(args.template, "rb") as f:
        source = f.read()
    translated, params = cached_translation(args.cache_dir, source, args.region, overrides)
    if translated is None:
        from samtranslator.yaml_helper import yaml_parse

        raw = yaml_parse(source.decode("utf-8"))
        params = parameter_values(raw, overrides)
        try:
            translated = translate(raw, args.region, params)
        except Exception as e:  # samtranslator's InvalidDocumentException carries the causes
            causes = getattr(e, "causes", None)
            detail = "; ".join(str(getattr(c, "message", c)) for c in causes) if causes else str(e)
            raise SystemExit(f"moto-provision: translating {args.template}: {detail}")
        store_translation(args.cache_dir, source, args.region, overrides, translated, params)

    prov = Provisioner(args.endpoint, args.region, args.stack_name, args.with_functions)
    for service in ("dynamodb", "sqs", "s3"):  # load the service models before waiting
        prov.client(service)
    if args.wait:
        wait_for(args.endpoint, args.wait)
    physical, details = prov.provision(translated, params)

    result = {}
    for key, (logical, field) in REQUIRED_OUTPUTS.items():
        if logical not in details:
            raise SystemExit(f"moto-provision: {args.template} has no {logical} resource")
        result[key] = details[logical][field]
    result["Region"] = args.region
    result["StackName"] = args.stack_name
    result["Resources"] = physical
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

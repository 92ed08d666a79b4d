"""moto's server as the tests run it: AWS-managed policies in the `aws` partition only, parsed once.

moto loads its ~1,600 AWS-managed policies into the IAM backend of every partition (aws, aws-cn,
aws-us-gov, the ISO ones) at every reset, parsing the same JSON each time: about 1.5 s of CPU per
test on this suite's machines. The bot and the tests only ever act in `aws`, where the policies are
loaded exactly as moto loads them; elsewhere IAM starts as empty as moto's default.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam import models
from moto.server import main

_PARSED = json.loads(models.aws_managed_policies_data)


def _aws_managed_policies(self: Any) -> list[Any]:
    if not models.load_iam_aws_managed_policies() or self.partition != "aws":
        return []
    return [models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d) for name, d in _PARSED.items()]


models.IAMBackend._init_aws_policies = _aws_managed_policies  # type: ignore[method-assign]

if __name__ == "__main__":
    main()

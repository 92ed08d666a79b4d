"""Stand-ins for the IAM calls moto (5.2) lacks, answered on one botocore client before anything is
sent, with answers checked against botocore's model (as botocore's Stubber checks them).

moto answers CreateServiceSpecificCredential, ListServiceSpecificCredentials and
DeleteServiceSpecificCredential with an HTML 500; everything else the bot calls, moto serves.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.awsrequest import AWSResponse

# moto's answer to ListServiceSpecificCredentials is an HTML 500; a user moto knows has none, and IAM
# answers so (tests.support.fault_proxy's `canned`, for a bot in another process).
NO_SERVICE_CREDENTIALS = (
    '<ListServiceSpecificCredentialsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    "<ListServiceSpecificCredentialsResult><ServiceSpecificCredentials/><IsTruncated>false</IsTruncated></ListServiceSpecificCredentialsResult>"
    "<ResponseMetadata><RequestId>moto-gap-stand-in</RequestId></ResponseMetadata></ListServiceSpecificCredentialsResponse>"
)
from botocore.validate import validate_parameters


class ServiceCredentials:
    """IAM's service-specific credentials, which moto lacks, answered on one botocore client before
    anything is sent: ListServiceSpecificCredentials one credential a page (so the gateway must follow
    the Marker), DeleteServiceSpecificCredential with NoSuchEntity once a credential is gone."""

    def __init__(self, client: Any, held: dict[str, list[str]], *, strict: bool = True):
        self.held = held
        self.strict = strict  # False: any user moto has may be asked for, and holds none unless `held` says so
        self.markers: list[str | None] = []  # each ListServiceSpecificCredentials' Marker (None: first page)
        self.deleted: list[tuple[str, str]] = []
        self._model = client.meta.service_model
        client.meta.events.register("before-call.iam.ListServiceSpecificCredentials", self._list)
        client.meta.events.register("before-call.iam.DeleteServiceSpecificCredential", self._delete)

    def _answer(self, operation: str, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        shape = self._model.operation_model(operation).output_shape
        if shape is not None:
            validate_parameters(parsed, shape)  # what IAM would answer, as botocore's model describes it
        return AWSResponse("", 200, {}, None), {**parsed, "ResponseMetadata": {"RequestId": f"stand-in-{operation}", "HTTPStatusCode": 200}}

    @staticmethod
    def _no_such_entity(message: str) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("", 404, {}, None), {"Error": {"Code": "NoSuchEntity", "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 404}}

    def _list(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = params["body"]
        user, marker = body["UserName"], body.get("Marker")
        self.markers.append(marker)
        if user not in self.held and self.strict:
            return self._no_such_entity(f"The user with name {user} cannot be found.")
        ids = self.held.get(user, [])
        at = int(marker) if marker else 0
        page = [
            {
                "UserName": user,
                "Status": "Active",
                "ServiceUserName": f"{user}-at-{at}",
                "CreateDate": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
                "ServiceSpecificCredentialId": cid,
                "ServiceName": "codecommit.amazonaws.com",
            }
            for cid in ids[at : at + 1]
        ]
        more = at + 1 < len(ids)
        return self._answer("ListServiceSpecificCredentials", {"ServiceSpecificCredentials": page, "IsTruncated": more, **({"Marker": str(at + 1)} if more else {})})

    def _delete(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = params["body"]
        user, cid = body["UserName"], body["ServiceSpecificCredentialId"]
        if cid not in self.held.get(user, []):
            return self._no_such_entity(f"No such credential {cid}")
        self.held[user].remove(cid)
        self.deleted.append((user, cid))
        return self._answer("DeleteServiceSpecificCredential", {})

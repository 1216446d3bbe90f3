"""Stable diagnostic codes. Never renumber: users and tools match on them.

MLS0xx: files and YAML. MLS1xx: the schema of a document. MLS2xx: links between documents.
MLS3xx: the project file. MLS4xx: policies of mlspec.yaml.
"""

from __future__ import annotations

# Files and YAML
FILE_UNREADABLE = "MLS001"
FILE_TOO_LARGE = "MLS002"
NOT_UTF8 = "MLS003"
BINARY_FILE = "MLS004"
SYMLINK_ESCAPES = "MLS005"
NO_SPEC_FILES = "MLS006"
YAML_SYNTAX = "MLS010"
YAML_TAB = "MLS011"
DUPLICATE_KEY = "MLS012"
YAML_TOO_COMPLEX = "MLS013"
EMPTY_FILE = "MLS014"
NOT_A_MAPPING = "MLS015"
UNSUPPORTED_TAG = "MLS016"
EMPTY_DOCUMENT = "MLS017"
NON_STRING_KEY = "MLS018"
AMBIGUOUS_LINE_BREAK = "MLS019"

# Documents
UNKNOWN_API_VERSION = "MLS020"
UNKNOWN_KIND = "MLS021"
MISSING_FIELD = "MLS100"
UNKNOWN_FIELD = "MLS101"
WRONG_TYPE = "MLS102"
INVALID_CHOICE = "MLS103"
OUT_OF_RANGE = "MLS104"
INVALID_NAME = "MLS105"
INVALID_VALUE = "MLS106"
BAD_INTERPOLATION = "MLS107"
TOO_MANY_PROBLEMS = "MLS108"
TEMPLATE_SYNTAX = "MLS110"
TEMPLATE_UNDECLARED = "MLS111"
TEMPLATE_UNUSED = "MLS112"
TEMPLATE_UNSAFE = "MLS113"

# Links
DUPLICATE_ADDRESS = "MLS200"
DANGLING_REFERENCE = "MLS201"
WRONG_KIND_REFERENCE = "MLS202"
CYCLE = "MLS203"
AMBIGUOUS_REFERENCE = "MLS204"
BAD_CROSS_REFERENCE = "MLS205"

# Project file
PROJECT_INVALID = "MLS300"

# Policies
POLICY_OWNER_TEAM = "MLS400"
POLICY_REQUIRED_LABEL = "MLS401"
POLICY_AUTHOR = "MLS402"
POLICY_GATED_SERVING = "MLS403"
POLICY_PROTECTED = "MLS404"

DESCRIPTIONS: dict[str, str] = {
    FILE_UNREADABLE: "a spec file cannot be read",
    FILE_TOO_LARGE: "a spec file is larger than limits.max_file_bytes",
    NOT_UTF8: "a spec file is not valid UTF-8",
    BINARY_FILE: "a file matched by the spec globs is binary",
    SYMLINK_ESCAPES: "a symlink points outside the project",
    NO_SPEC_FILES: "the spec globs match no file",
    YAML_SYNTAX: "invalid YAML",
    YAML_TAB: "a tab where YAML needs spaces",
    DUPLICATE_KEY: "the same key twice in one mapping",
    YAML_TOO_COMPLEX: "alias expansion or nesting beyond the loader's limits",
    EMPTY_FILE: "a spec file holds no document",
    NOT_A_MAPPING: "a document that is not a mapping",
    UNSUPPORTED_TAG: "an explicit YAML tag mlspec does not accept",
    EMPTY_DOCUMENT: "an empty document in a multi-document file",
    NON_STRING_KEY: "a mapping key that is not a string",
    AMBIGUOUS_LINE_BREAK: "a lone CR, NEL, LS or PS character: YAML tools disagree on whether it breaks a line",
    UNKNOWN_API_VERSION: "apiVersion missing or not supported",
    UNKNOWN_KIND: "kind missing or unknown",
    MISSING_FIELD: "a required field is missing",
    UNKNOWN_FIELD: "a field the kind does not have",
    WRONG_TYPE: "a value of the wrong type",
    INVALID_CHOICE: "a value outside the allowed choices",
    OUT_OF_RANGE: "a value outside its range, length or pattern",
    INVALID_NAME: "metadata.name is not a DNS label",
    INVALID_VALUE: "a value that breaks a rule of its kind",
    BAD_INTERPOLATION: "a malformed ${env:NAME} reference",
    TOO_MANY_PROBLEMS: "a document has more problems than are shown; the rest are counted",
    TEMPLATE_SYNTAX: "a prompt template that Jinja2 cannot parse",
    TEMPLATE_UNDECLARED: "a prompt template uses a variable its spec does not declare",
    TEMPLATE_UNUSED: "a prompt declares a variable its template never uses",
    TEMPLATE_UNSAFE: "a prompt template reaches for what the sandbox refuses (__class__, mro, ...)",
    DUPLICATE_ADDRESS: "two documents declare the same Kind/name",
    DANGLING_REFERENCE: "a reference to a resource that does not exist",
    WRONG_KIND_REFERENCE: "a reference to a resource of a kind the field does not accept",
    CYCLE: "resources that depend on each other in a cycle",
    AMBIGUOUS_REFERENCE: "a bare name that matches several kinds the field accepts",
    BAD_CROSS_REFERENCE: "a reference that exists but names something its target lacks",
    PROJECT_INVALID: "mlspec.yaml is invalid",
    POLICY_OWNER_TEAM: "metadata.owner is not a team the owners policy allows for this address",
    POLICY_REQUIRED_LABEL: "a label the required_labels policy asks for is missing",
    POLICY_AUTHOR: "the commit's author is not among the people the owners policy lets change this address",
    POLICY_GATED_SERVING: "a Service would serve a Model whose evaluation gates did not pass",
    POLICY_PROTECTED: "a plan would delete a protected resource without --allow-destroy",
}

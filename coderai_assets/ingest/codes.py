"""Stable error codes a document can end with. The API and the exports show them; never rename one."""

UNSUPPORTED_FORMAT = "unsupported_format"  # not PDF, DOCX, HTML or text (by content, not extension)
EMPTY_FILE = "empty_file"
TOO_LARGE = "too_large"
ENCRYPTED = "encrypted"  # password-protected PDF or DOCX
CORRUPT_FILE = "corrupt_file"  # claims a format but cannot be opened as it
UNSAFE_ARCHIVE = "unsafe_archive"  # DOCX zip with '..' paths, absolute paths or symlinks
ARCHIVE_BOMB = "archive_bomb"  # DOCX zip inflating past the limits
NO_TEXT = "no_text"  # opened, but holds no text (e.g. a scan without OCR layer)
PARSE_TIMEOUT = "parse_timeout"
PARSE_RESOURCE_LIMIT = "parse_resource_limit"  # the parser hit its memory or CPU limit
PARSE_FAILED = "parse_failed"  # any other parser failure
INTERNAL_ERROR = "internal_error"  # a defect met by this document (logged with its traceback); it fails alone

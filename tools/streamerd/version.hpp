// The version streamerd reports (--version, the Server header).
#pragma once

#define STREAMERD_VERSION "0.1.0"

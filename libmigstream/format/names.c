/*
 * Names of the wire enumerations of common.h (record types, page states,
 * feature bits, trackers) and the feature bits this library implements.
 */
#include "format/frame.h"
#include "migstream/common.h"

const char *ms_record_type_name(unsigned type)
{
    switch (type) {
    case MS_REC_INFO: return "INFO";
    case MS_REC_REGIONS: return "REGIONS";
    case MS_REC_PAGES: return "PAGES";
    case MS_REC_DEVICE: return "DEVICE";
    case MS_REC_END: return "END";
    case MS_REC_ROUND: return "ROUND";
    case MS_REC_OVERLAY: return "OVERLAY";
    case MS_REC_PART: return "PART";
    default: return NULL;
    }
}

const char *ms_page_state_name(unsigned state)
{
    switch (state) {
    case MS_PAGE_DATA: return "DATA";
    case MS_PAGE_ZERO: return "ZERO";
    case MS_PAGE_DISCARDED: return "DISCARDED";
    case MS_PAGE_FILL: return "FILL";
    case MS_PAGE_IN_PLACE: return "IN_PLACE";
    default: return NULL;
    }
}

const char *ms_feature_name(unsigned bit)
{
    switch (bit) {
    case 0: return "DISCARDED";
    case 1: return "FILL";
    case 2: return "IN_PLACE";
    case 3: return "OVERLAYS";
    case 4: return "PARTS";
    default: return NULL;
    }
}

void ms_known_features(uint64_t *required, uint64_t *optional)
{
    if (required)
        *required = MSI_KNOWN_REQUIRED_FEATURES;
    if (optional)
        *optional = MSI_KNOWN_OPTIONAL_FEATURES;
}

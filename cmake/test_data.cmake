# MIPR_TEST_DATA: the folder of real models and text the tests use (README "Test data"),
# from the environment, else ../shared/data beside the checkout. Tests that need it fail,
# saying where to get it, when it is missing; they are never skipped.
if(DEFINED ENV{MIPR_TEST_DATA})
  set(_mipr_data_default "$ENV{MIPR_TEST_DATA}")
else()
  get_filename_component(_mipr_data_default "${PROJECT_SOURCE_DIR}/../shared/data" ABSOLUTE)
endif()
set(MIPR_TEST_DATA "${_mipr_data_default}" CACHE PATH "Folder with the test models and text")

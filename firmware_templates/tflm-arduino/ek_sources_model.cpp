// Arduino compiles only the sketch folder's top level and src/: this unit
// brings in the model the tflm backend generated into model/.
#include <TensorFlowLite.h>

#include "common/ek_model.h"
#include "model/ek_model_tflm.cc"
#include "model/model_data.cc"

/* shelf.h: the umbrella header of libshelf. */
#ifndef SHELF_SHELF_H
#define SHELF_SHELF_H

#include "shelf/core.h"
#include "shelf/cpu.h"
#include "shelf/config.h"
#include "shelf/store.h"
#include "shelf/import.h"
#include "shelf/snapshot.h"
#include "shelf/gen.h"
#include "shelf/model.h"
#include "shelf/eval.h"
#include "shelf/text.h"
#include "shelf/coldfill.h"
#include "shelf/slate.h"
#include "shelf/serve.h"
#include "shelf/rank.h"

#endif

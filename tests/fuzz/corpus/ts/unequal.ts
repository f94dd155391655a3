@problemName u
@univariate true
@equalLength false
@classLabel false
@data
1,2,3:x
1,2,3,4:y
